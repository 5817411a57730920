// Package milter is nobounce's side of the Sendmail milter protocol, on
// github.com/emersion/go-milter: the per-connection Session that follows one
// SMTP transaction after another and answers each at the latest at the final
// ".", and the Server that accepts MTA connections, bounds them and drains
// them on shutdown.
//
// The life of a message reads top to bottom in session.go. What go-milter
// v0.5.0 leaves to its user, and where this package covers it:
//
//   - It replaces the Milter backend (losing the connection's state) after any
//     bare accept, reject, tempfail or discard response. nobounce never sends
//     one: rejections are custom 'y' replies (SMFIR_REPLYCODE) and acceptance
//     at end of message is SMFIR_CONTINUE, which both Postfix and Sendmail
//     take as "accept" at that stage. See Session.Body and reply().
//   - It replaces its macro map at every macro packet, so a callback only sees
//     the latest stage's macros. Session merges them (mergeMacros).
//   - It sets no read or write deadlines. Server wraps every connection
//     (deadlineConn).
//   - Its Close only closes listeners. Server tracks connections and drains
//     them (Shutdown).
//   - It negotiates protocol version 2; every feature used here (custom
//     replies, header add/change) exists in version 2.
package milter
