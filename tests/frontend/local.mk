# tests/frontend
