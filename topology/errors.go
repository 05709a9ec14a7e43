package topology

import (
	"errors"
	"fmt"
)

// Kinds of Error. Test for them with errors.Is.
var (
	// ErrNotFound: the named object does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the change collides with stored state (duplicate name,
	// segment, interface, MAC or IP; an object still in use; no free id).
	ErrConflict = errors.New("conflict")
	// ErrInvalid: a field of the change is malformed or out of range.
	ErrInvalid = errors.New("invalid")
	// ErrPrecondition: the write's If-Match does not match the object's
	// current revision_number; nothing was stored.
	ErrPrecondition = errors.New("precondition failed")
	// ErrUnavailable: the state store cannot be reached (etcd down or
	// without quorum); nothing was stored, the caller may retry. Not an
	// *Error: it says nothing about the change itself.
	ErrUnavailable = errors.New("state store unavailable")
)

// Error is the error every Store method returns for a rejected change.
// errors.Is(err, ErrNotFound|ErrConflict|ErrInvalid) tells its kind.
type Error struct {
	Kind    error  // ErrNotFound, ErrConflict, ErrInvalid or ErrPrecondition
	Field   string // the offending JSON field for ErrInvalid, e.g. "segment_id" or "ips[1]"
	Message string // human readable, without the kind
}

// Error implements error.
func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

// Is makes errors.Is(err, ErrNotFound) and friends work.
func (e *Error) Is(target error) bool {
	return target == e.Kind
}

func notFound(format string, args ...any) error {
	clipArgs(args)
	return &Error{Kind: ErrNotFound, Message: fmt.Sprintf(format, args...)}
}

func preconditionFailed(format string, args ...any) error {
	return &Error{Kind: ErrPrecondition, Message: fmt.Sprintf(format, args...)}
}

func conflict(format string, args ...any) error {
	return &Error{Kind: ErrConflict, Message: fmt.Sprintf(format, args...)}
}

// invalid builds an ErrInvalid error. Offending values are quoted back to
// the caller, clipped so that a huge input does not make a huge error.
func invalid(field, format string, args ...any) error {
	clipArgs(args)
	return &Error{Kind: ErrInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// clipArgs clips the string arguments of an error message in place.
func clipArgs(args []any) {
	for i, a := range args {
		switch v := a.(type) {
		case string:
			args[i] = clip(v)
		case NetworkType:
			args[i] = NetworkType(clip(string(v)))
		}
	}
}

// maxQuoted is the longest input value an error message repeats in full.
const maxQuoted = 80

// Clip shortens s to its first maxQuoted bytes plus a note of its length,
// for error messages that quote what a client sent.
func Clip(s string) string { return clip(s) }

// clip shortens s to its first maxQuoted bytes plus a note of its length.
func clip(s string) string {
	if len(s) <= maxQuoted {
		return s
	}
	return fmt.Sprintf("%s...(%d bytes)", s[:maxQuoted], len(s))
}
