"""What the extension keeps in Flask's session: the keys, and how fresh the last-seen stamp is."""

PROFILE_KEY = "_bitbucket_profile"
USER_ID_KEY = "_user_id"  # Flask-Login's: the signed-in user's get_id()
PROVIDER_KEY = "_bitbucket_provider"  # which provider signed the person in (none: Cloud)
SIGNED_IN_AT_KEY = "_bitbucket_signed_in_at"
SEEN_AT_KEY = "_bitbucket_seen_at"
# How stale the last-seen stamp may get before a request renews it (a session write).
SEEN_AT_RESOLUTION_SECONDS = 60
