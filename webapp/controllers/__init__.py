"""Controllers: parse and check a request, call models, choose the view."""
