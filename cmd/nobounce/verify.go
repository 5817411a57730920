package main

import (
	"strings"

	"github.com/nobounce/nobounce/config"
)

// verifyFlag is -verify DOMAIN=ADDR for serve and scan, repeatable: the
// callout backend of a local domain (config recipient.verify). Given at
// least once, the flags replace the file's whole recipient.verify list, as
// -clamd replaces clamd.addresses; the domains become local domains.
type verifyFlag []string

const verifyUsage = "callout `DOMAIN=ADDR`, repeatable: ask the SMTP server at ADDR (inet:host:port, host:port or host) " +
	"whether each recipient of DOMAIN exists (replaces the file's recipient.verify)"

func (v *verifyFlag) String() string { return strings.Join(*v, ",") }

// Set checks one DOMAIN=ADDR as the configuration would.
func (v *verifyFlag) Set(s string) error {
	if _, _, err := config.ParseVerify(s); err != nil {
		return err
	}
	*v = append(*v, s)
	return nil
}

// apply puts the flags into the configuration, if any were given.
func (v verifyFlag) apply(c *config.Config) {
	if len(v) > 0 {
		c.Recipient.Verify = append([]string(nil), v...)
	}
}
