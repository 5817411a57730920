package spamd

import (
	"net/netip"
	"strings"
	"time"

	"github.com/nobounce/nobounce/scan"
)

// ReceivedHeader returns the Received header field (with its CRLF) that
// the scanner puts in front of the message it sends to spamd, or "" when
// the envelope does not name the SMTP client.
//
// A milter sees the message without the Received field its MTA is about to
// add (neither Postfix nor Sendmail passes its own to milters), and SPAMC
// has no other way to tell spamd who connected: without it SpamAssassin
// knows no relay (NO_RELAYS), can apply neither trusted_networks nor its
// HELO and reverse-DNS rules. The field is written the way Postfix writes
// it, the form SpamAssassin's parser reads best:
//
//	Received: from HELO (RDNS [IP])
//		by MTA (Postfix) with ESMTP id QUEUEID
//		for <RCPT>; DATE
//
// "unknown" stands for a missing HELO or reverse name, ESMTPA marks an
// authenticated sender (RFC 3848), and "for" is there for one recipient
// only. spamd gets it; the delivered message gets the MTA's own.
func ReceivedHeader(env *scan.Envelope, now time.Time) string {
	if env == nil {
		return ""
	}
	ip, err := netip.ParseAddr(strings.Trim(strings.TrimPrefix(strings.TrimSpace(env.ClientAddr), "IPv6:"), "[]"))
	if err != nil {
		return ""
	}
	ip = ip.Unmap()
	addr := ip.String()
	if ip.Is6() {
		addr = "IPv6:" + addr
	}
	helo := token(env.Helo)
	if helo == "" {
		helo = "unknown"
	}
	rdns := token(env.ClientName)
	if rdns == "" || strings.HasPrefix(rdns, "[") {
		// Sendmail names an unresolved client by its address in brackets.
		rdns = "unknown"
	}
	by := token(env.MTAName)
	if by == "" {
		by = "localhost"
	}
	with := "ESMTP"
	if env.AuthUser != "" {
		with = "ESMTPA"
	}
	var b strings.Builder
	b.WriteString("Received: from " + helo + " (" + rdns + " [" + addr + "])\r\n")
	b.WriteString("\tby " + by + " (Postfix) with " + with)
	if id := token(env.QueueID); id != "" {
		b.WriteString(" id " + id)
	}
	if len(env.Rcpts) == 1 {
		if r := token(env.Rcpts[0]); r != "" && !strings.ContainsAny(r, "<>") {
			b.WriteString("\r\n\tfor <" + r + ">")
		}
	}
	b.WriteString("; " + now.Format("Mon, 2 Jan 2006 15:04:05 -0700 (MST)") + "\r\n")
	return b.String()
}

// token keeps the printable ASCII of s other than space and the
// characters that delimit the parts of a Received field.
func token(s string) string {
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune("();", r) {
			return -1
		}
		return r
	}, s)
}
