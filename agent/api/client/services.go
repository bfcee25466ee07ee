package client

import (
	"context"
	"net/http"

	"osmanager/agent/api/apitypes"
)

// ServicesRequest is the call that lists the declared services.
var ServicesRequest = Request{Method: http.MethodGet, Path: "/v1/services"}

// ReloadRequest is the call that reads the declared services again.
var ReloadRequest = Request{Method: http.MethodPost, Path: "/v1/reload"}

// Services lists the declared services and the refused entries.
func (c *Client) Services(ctx context.Context) (apitypes.ServiceList, error) {
	return call[apitypes.ServiceList](ctx, c, ServicesRequest)
}

// Reload makes the agent read its declared services again.
func (c *Client) Reload(ctx context.Context) (apitypes.Reloaded, error) {
	return call[apitypes.Reloaded](ctx, c, ReloadRequest)
}
