# tests/unit: tests owned by the fuse work
