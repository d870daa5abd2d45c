// Projection tests (issue 5) live here.
