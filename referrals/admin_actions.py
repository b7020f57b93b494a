"""The one loop behind the admin's bulk actions: call a service for each selected row,
report how many went through and, by row, why the others were refused."""

from collections.abc import Callable, Iterable

from django.contrib import messages

from config.errors import ApplicationError


def run_each(modeladmin, request, ids: Iterable[int], call: Callable, done: Callable[[list], str]) -> list:
    """`call(pk)` for each id; `done(results)` words the success message. Returns the results."""
    results, refused = [], []
    for pk in ids:
        try:
            results.append(call(pk))
        except ApplicationError as exc:
            refused.append(f"#{pk}: {exc.message}")
    if results:
        modeladmin.message_user(request, done(results), messages.SUCCESS)
    if refused:
        modeladmin.message_user(request, f"{len(refused)} refused: " + " ".join(refused), messages.ERROR)
    return results
