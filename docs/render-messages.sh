#!/usr/bin/env bash
# Pictures of the notification messages for the README: the notify tests keep
# the emails, Teams cards and Slack messages they check; this renders them
# with headless Chromium into docs/screenshots/. Needs node, chromium and
# `npm ci --prefix notify/testdata/adaptivecards`.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
MICROAPPS_MESSAGES_DIR="$tmp" go test -count=1 -run 'Slack|TestTeamsMessages|TestEmailThroughAPrivateRelay' ./notify
node docs/render-messages.js "$tmp"
shot() { # file width height out
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --allow-file-access-from-files \
    --window-size="$2,$3" --screenshot="$4" "file://$1" >/dev/null 2>&1
}
out=docs/screenshots
shot "$tmp/email-ann.html" 640 520 "$out/email-new-survey-fr.png"
shot "$tmp/email-eve.html" 640 520 "$out/email-survey-expiring.png"
shot "$tmp/email-boss.html" 640 600 "$out/email-survey-statistics.png"
shot "$tmp/teams-en-survey_statistics.html" 620 520 "$out/teams-survey-statistics.png"
shot "$tmp/teams-fr-new_survey.html" 620 440 "$out/teams-new-survey-fr.png"
shot "$tmp/slack-en-survey_statistics.html" 620 300 "$out/slack-survey-statistics.png"
ls -l "$out"/email-*.png "$out"/teams-*.png "$out"/slack-*.png
