package recipient

import "strings"

// Groups maps recipients to policy groups, by address or by domain. At end
// of data a milter can only accept or refuse the whole message, so every
// recipient of one transaction must share one policy: a recipient whose
// group differs from the first accepted recipient's is answered 452 4.5.3
// and the client sends it again in a transaction of its own (RFC 5321
// §4.5.3.1.10; DESIGN.md decision 2).
type Groups struct {
	byAddr   map[string]string
	byDomain map[string]string
}

// DefaultGroup is the group of a recipient no entry names.
const DefaultGroup = ""

// NewGroups makes the mapping from keys to group names: a key with '@' is
// an address, one without a domain. Case is ignored. An address entry beats
// its domain's.
func NewGroups(m map[string]string) *Groups {
	g := &Groups{byAddr: map[string]string{}, byDomain: map[string]string{}}
	for k, v := range m {
		k = strings.ToLower(k)
		if strings.Contains(k, "@") {
			g.byAddr[k] = v
		} else {
			g.byDomain[k] = v
		}
	}
	return g
}

// Of returns the group of an address; DefaultGroup when none is set. A nil
// *Groups puts everyone in DefaultGroup.
func (g *Groups) Of(addr string) string {
	if g == nil {
		return DefaultGroup
	}
	addr = strings.ToLower(addr)
	if v, ok := g.byAddr[addr]; ok {
		return v
	}
	if _, domain, ok := splitAddr(addr); ok {
		if v, ok := g.byDomain[domain]; ok {
			return v
		}
	}
	return DefaultGroup
}

// Len is the number of entries.
func (g *Groups) Len() int {
	if g == nil {
		return 0
	}
	return len(g.byAddr) + len(g.byDomain)
}

// OtherGroup is the 452 4.5.3 reply for a recipient of another group than
// the transaction's.
func OtherGroup(rcpt string) Result {
	return Result{Status: Unsure, Reason: ReasonOtherGroup, Code: 452, Enhanced: "4.5.3",
		Text: "<" + rcpt + ">: Too many recipients: this one has another delivery policy, send it in a separate transaction"}
}
