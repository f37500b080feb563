# tests/unit: tests owned by the parent work
