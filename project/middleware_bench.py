"""A synchronous pass-through middleware: what one sync middleware in an async stack costs
(``python -m bench``, adaptation figures)."""


class PassThroughMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)
