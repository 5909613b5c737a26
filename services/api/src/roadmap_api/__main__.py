"""``python -m roadmap_api``: the API's launcher (``roadmap_api.serve``)."""

from roadmap_api.serve import main

main()
