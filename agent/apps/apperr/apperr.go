// Package apperr is the one error type of the application manager: every
// failure of the package reader, the store, the runner and the local API
// carries a Code, and the API turns the Code into its JSON error code and
// HTTP status. It imports nothing of the agent, so every layer can use it.
//
//	err := apperr.New(apperr.Conflict, "hello 1.0.0 is already installed (use force)")
//	apperr.CodeOf(err)       // apperr.Conflict, also through fmt.Errorf("…: %w", err)
//	apperr.CodeOf(io.EOF)    // apperr.Internal: an error without a Code is a bug
//	apperr.CodeOf(enospc)    // apperr.NoSpace: ENOSPC and EDQUOT are mapped anywhere in the chain
package apperr

import (
	"errors"
	"net/http"
	"syscall"
)

// Code classifies a failure for the caller. Its string is the API's
// error code.
type Code string

// The codes, as the local API sends them.
const (
	BadRequest   Code = "bad_request"   // bad archive, manifest, URL or argument
	NotFound     Code = "not_found"     // no such app or run
	Conflict     Code = "conflict"      // already installed, install in progress, older version
	InvalidState Code = "invalid_state" // not possible in the current state (no previous version, run exited)
	Integrity    Code = "integrity"     // sha256 or size mismatch, download cut short
	TooLarge     Code = "too_large"     // over a size, file-count or body cap
	NoSpace      Code = "no_space"      // the file system is full (ENOSPC, EDQUOT)
	CantStart    Code = "cant_start"    // the app could not be started
	Forbidden    Code = "forbidden"     // the caller may not do this
	Internal     Code = "internal"      // a bug or an unexpected system error
)

// HTTPStatus is the status the local API answers a Code with.
func (c Code) HTTPStatus() int {
	switch c {
	case BadRequest:
		return http.StatusBadRequest
	case NotFound:
		return http.StatusNotFound
	case Conflict, InvalidState:
		return http.StatusConflict
	case Integrity:
		return http.StatusUnprocessableEntity
	case TooLarge:
		return http.StatusRequestEntityTooLarge
	case NoSpace:
		return http.StatusInsufficientStorage
	case CantStart:
		return http.StatusBadGateway
	case Forbidden:
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

// Error is a failure with a Code. Msg is shown to the user as is: it
// names what failed and never holds a secret.
type Error struct {
	Code Code
	Msg  string
	Err  error // the cause, if any; its text is appended to Msg
}

func (e *Error) Error() string {
	switch {
	case e.Err == nil:
		return e.Msg
	case e.Msg == "":
		return e.Err.Error()
	}
	return e.Msg + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, &Error{Code: c}) match any Error with Code c.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Msg == "" && t.Err == nil && t.Code == e.Code
}

// New returns an Error with code and message.
func New(code Code, msg string) *Error { return &Error{Code: code, Msg: msg} }

// Wrap returns an Error with code, message and cause. A cause that is
// ENOSPC or EDQUOT makes the code NoSpace whatever code is given: a full
// disk is never the caller's bad request.
func Wrap(code Code, msg string, err error) *Error {
	if isNoSpace(err) {
		code = NoSpace
	}
	return &Error{Code: code, Msg: msg, Err: err}
}

// CodeOf returns the Code of the first Error in err's chain; ENOSPC or
// EDQUOT anywhere in the chain gives NoSpace; nil gives ""; anything else
// is Internal.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		if isNoSpace(err) {
			return NoSpace
		}
		return e.Code
	}
	if isNoSpace(err) {
		return NoSpace
	}
	return Internal
}

func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
