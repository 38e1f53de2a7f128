"""``python -m bitbucket_signin check FILE``: the admin commands that need no app."""

from .cli import standalone

if __name__ == "__main__":
    standalone(prog_name="python -m bitbucket_signin")
