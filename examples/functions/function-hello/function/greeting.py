"""Helpers of function-hello, imported relatively (``from .greeting import ...``) as in the template."""


def greeting_for(greeting: str, name: str) -> str:
    """The sentence the function puts on the composite resource."""
    return f"{greeting}, {name}!"
