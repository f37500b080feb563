# tests/unit: tests owned by the shared work
