package milter

import (
	gomilter "github.com/emersion/go-milter"
)

// RecipientSettings are the envelope checks: recipients at RCPT TO, null
// senders at MAIL FROM, BATV. (Filled in with the recipient feature.)
type RecipientSettings struct{}

// mailDecision answers MAIL FROM; nil lets the transaction go on.
func (s *Session) mailDecision(from string, m *gomilter.Modifier) gomilter.Response {
	return nil
}

// rcptDecision answers RCPT TO; nil accepts the recipient.
func (s *Session) rcptDecision(rcpt string, m *gomilter.Modifier) gomilter.Response {
	return nil
}

// envelopeEdits applies envelope changes to an accepted message at the end
// of the message (BATV: the signed return path, the unsigned recipient).
func (s *Session) envelopeEdits(m *gomilter.Modifier) error {
	return nil
}
