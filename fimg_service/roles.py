"""Who may do what: the role names and the sets of them that use cases and job types grant."""

ROLES = ("admin", "analyst", "artist", "service")
ADMINS = ("admin",)
CURATORS = ("admin", "analyst")  # banks, galleries, face jobs
HASHERS = ("admin", "analyst", "service")  # match batches, synchronous hashing and lookup
ARTISTS = ("admin", "artist")  # age progression
