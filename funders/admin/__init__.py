"""The funder back office. One module per area; each registers its admin pages."""

from funders.admin import allocations, imports, programs, reports, staff  # noqa: F401
