#!/usr/bin/env bash
# Sets up and runs the demo: the Bitbucket emulator on :7008 (Cloud, and Data Center under
# /bitbucket) and the app under gunicorn on :7007 with both sign-in buttons.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

mkdir -p .demo
[ -s .demo/secret_key ] || .venv/bin/python -c "import secrets; print(secrets.token_hex(32))" > .demo/secret_key

.venv/bin/python -m bitbucket_signin.emulator --host 127.0.0.1 --port 7008 \
  --accounts examples/demo/accounts.yaml &
emulator=$!
trap 'kill "$emulator" 2>/dev/null || true' EXIT INT TERM

export FLASK_SECRET_KEY="$(cat .demo/secret_key)"
export FLASK_BITBUCKET_CLIENT_ID=demo-client-id
export FLASK_BITBUCKET_CLIENT_SECRET=demo-client-secret
export FLASK_BITBUCKET_CATALOG=examples/demo/catalog.yaml
export FLASK_BITBUCKET_SIGNIN_RESOLVERS="userIdMatchingUserEntityAnnotation,usernameMatchingUserEntityAnnotation,emailMatchingUserEntityProfileEmail"
export FLASK_BITBUCKET_AUTHORIZE_URL=http://127.0.0.1:7008/site/oauth2/authorize
export FLASK_BITBUCKET_TOKEN_URL=http://127.0.0.1:7008/site/oauth2/access_token
export FLASK_BITBUCKET_API_BASE_URL=http://127.0.0.1:7008/2.0
export FLASK_BITBUCKET_CALLBACK_URL=http://localhost:7007/api/auth/bitbucket/handler/frame
export FLASK_BITBUCKET_PRODUCT_NAME="Acme Developer Portal"
# Bitbucket Data Center side by side with Cloud, played by the same emulator under /bitbucket.
export FLASK_BITBUCKET_SERVER_URL=http://localhost:7008/bitbucket
export FLASK_BITBUCKET_SERVER_API_URL=http://127.0.0.1:7008/bitbucket
export FLASK_BITBUCKET_SERVER_CLIENT_ID=demo-dc-client-id
export FLASK_BITBUCKET_SERVER_CLIENT_SECRET=demo-dc-client-secret
export FLASK_BITBUCKET_SERVER_CALLBACK_URL=http://localhost:7007/api/auth/bitbucketServer/handler/frame
export FLASK_BITBUCKET_SERVER_NAME="Acme Bitbucket (Data Center)"
export FLASK_BITBUCKET_SERVER_SIGNIN_RESOLVERS="userIdMatchingUserEntityAnnotation,userSlugMatchingUserEntityAnnotation,emailMatchingUserEntityProfileEmail"

echo "Open http://localhost:7007 and sign in with either button as any example account (Ctrl-C stops the demo)."
# Threads and timeouts come from gunicorn.conf.py, which gunicorn reads from this folder.
.venv/bin/gunicorn --workers 2 --bind 127.0.0.1:7007 wsgi:app
