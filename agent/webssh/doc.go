// Package webssh is the agent's web terminal: a shell on the instance in
// the owner's browser, replacing shellinabox. It is a supervisor service
// (Server.Run) serving one page, a login, and a websocket per terminal.
//
// # HTTP
//
//	GET  /           the page (login form, then xterm.js)
//	POST /login      form user, password, csrf: 204 and a session cookie, 401, 429, 503
//	GET  /ws         the websocket: needs the session cookie and an allowed Origin
//	POST /logout     form csrf: ends the login and its shells
//	GET  /assets/N   the page's scripts and styles (embedded; gzip when accepted), and their licences
//
// The POSTs need an allowed Origin too (none is refused). The allowed
// origins follow from the listening socket and the machine's addresses
// and names, never from the request's Host (DNS rebinding); see
// allowedOrigins. Logins are throttled per address and account, per
// address, and by a global budget of checks a minute (limiter); logins
// and shells are capped per account and in all (Server.newLogin,
// Server.startTerm).
//
// # Websocket messages
//
// Every message is one binary websocket message; its first byte is its
// type, integers are big-endian, offsets count bytes from the start of a
// session's output (or input) stream.
//
//	client → server
//	'h' Hello     version u8 (1), session id [16] (zeros: new), output offset u64, cols u16, rows u16
//	'i' Input     bytes for the shell (keystrokes, paste; UTF-8 from the page)
//	'r' Resize    cols u16, rows u16
//	'a' Ack       output offset u64 processed by the terminal
//	server → client
//	'A' Attached  session id [16], flags u8 (1 resumed, 2 output lost), output offset u64,
//	              input offset u64 (input received so far), window u32, input window u32
//	'o' Output    offset u64 of the first byte, bytes
//	'k' InputAck  input offset u64 written to the shell
//	'x' Exit      status i32 (-1: ended by the agent), reason (UTF-8)
//
// Hello comes first; Attached answers it. Flow control is by credit both
// ways: the server keeps at most window bytes of output not acknowledged
// (Ack), and stops reading the shell when that is full, so a flood grows no
// memory and Ctrl-C reaches the shell at once; the client sends at most
// input-window bytes beyond the last InputAck. The unacknowledged output is
// also the replay buffer: a client that reconnects within the resume window
// sends Hello with the session id and the offset it has received, and gets
// the rest; Attached's input offset tells it which input to send again.
// Output frames never end inside a UTF-8 sequence the shell has not
// finished writing, so each frame decodes whole.
package webssh
