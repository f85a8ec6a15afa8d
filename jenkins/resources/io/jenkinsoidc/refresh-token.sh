#!/bin/sh
# Keeps an AWS web identity token file fresh for agents without Node.js, with
# nothing but curl: the AWS SDKs and CLI re-read the file whenever they refresh.
# Usage: refresh-token.sh FILE AUDIENCE INTERVAL   (runs until FILE's folder is removed)
# Reads JENKINS_ID_TOKEN_REQUEST_URL and JENKINS_ID_TOKEN_REQUEST_TOKEN_FILE.
# The request token never goes on a command line (any process on the agent
# can read those with ps): curl reads the header from its standard input.
#
# The refresher runs without JENKINS_SERVER_COOKIE: when any sh step in the
# same directory is stopped (a timeout, a fail-fast parallel branch, a caught
# abort), durable-task kills every process whose environment carries that
# step directory's cookie (ProcessTree.killAll), and the refresher would die
# with it. JENKINS_NODE_COOKIE stays, so the build's end still kills it.
umask 077
: "${JENKINS_ID_TOKEN_REQUEST_URL:?is not set: run this inside withJenkinsOidc}" "${JENKINS_ID_TOKEN_REQUEST_TOKEN_FILE:?is not set: run this inside withJenkinsOidc}"
file="$1"; audience="$2"; interval="$3"
folder=$(dirname "$file")
fetch() {
  { printf 'Authorization: Bearer '; cat "$JENKINS_ID_TOKEN_REQUEST_TOKEN_FILE"; } |
    curl -fsS --max-time 20 -H @- -G --data-urlencode "audience=$audience" "$JENKINS_ID_TOKEN_REQUEST_URL" -o "$file.json" || return 1
  # {"value":"<jwt>"}: the JWT alphabet has no quotes, so sed is enough.
  sed -e 's/^{"value":"\([^"]*\)"}$/\1/' "$file.json" > "$file.tmp" && mv "$file.tmp" "$file" && rm -f "$file.json"
}
if [ "$4" = --loop ]; then
  while sleep "$interval"; do
    [ -d "$folder" ] || exit 0
    fetch || true
  done
  exit 0
fi
fetch || exit 1
# A new process (exec'd by env), so that its own environment lacks the cookie.
env -u JENKINS_SERVER_COOKIE sh "$0" "$file" "$audience" "$interval" --loop >/dev/null 2>&1 &
echo $! > "$folder/refresher.pid"
