// Package integration drives the real nobounce binary with real programs on
// loopback: a private clamd with a signature database made at test time,
// Postfix 3.7 and Sendmail 8.17 with the milter lines of examples/, and
// swaks as the SMTP client. The programs are installed by testbed/install.sh
// and started by the testbed/*.sh scripts, the same ones `make demo` uses.
//
//	bash testbed/install.sh && go test -tags integration -count=1 ./integration/
//
// It needs root (Postfix and Sendmail run their own users) and takes about
// 20 seconds; every program listens on 127.0.0.1 only, on free ports.
// NOBOUNCE_KEEP=1 keeps the work folder (logs, mailboxes, queues) after the
// run; it is kept anyway when a test fails, and its path is printed.
//
// Every test file carries the build tag "integration", so a plain
// `go test ./...` skips them; this file keeps the package buildable without it.
package integration
