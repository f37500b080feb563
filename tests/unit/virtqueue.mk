# tests/unit: tests owned by the virtqueue work
