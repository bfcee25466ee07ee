package api

import (
	"context"
	"net/http"

	"osmanager/agent/api/apitypes"
)

// Services is what an Apps may also implement to serve the declared
// services' routes (GET /v1/services, POST /v1/reload); without it they
// answer not_found.
type Services interface {
	// Services lists the declared services and the refused entries.
	Services(ctx context.Context) (apitypes.ServiceList, error)
	// Reload reads the declared services again and applies them.
	Reload(ctx context.Context) (apitypes.Reloaded, error)
}

func (s *Server) serviceRoutes(handle func(string, func(http.ResponseWriter, *http.Request) error)) {
	sv, ok := s.cfg.Apps.(Services)
	if !ok {
		return
	}
	handle("GET /v1/services", func(w http.ResponseWriter, r *http.Request) error {
		if err := noQuery(r); err != nil {
			return err
		}
		l, err := sv.Services(r.Context())
		return reply(w, http.StatusOK, l, err)
	})
	handle("POST /v1/reload", func(w http.ResponseWriter, r *http.Request) error {
		if err := noQuery(r); err != nil {
			return err
		}
		rep, err := sv.Reload(r.Context())
		return reply(w, http.StatusOK, rep, err)
	})
}
