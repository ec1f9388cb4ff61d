// Package handlers turns GitHub webhook events into basinix's work: one
// go-githubapp event handler per event kind, each parsing its payload and
// telling a small interface what to do. They do not talk to GitHub; the
// pipeline does.
package handlers

import "errors"

// ErrBadPayload marks a delivery whose body is not the event it claims to
// be; the server answers 400.
var ErrBadPayload = errors.New("malformed webhook payload")
