package apitest

import (
	"context"
	"time"

	"osmanager/agent/api/apitypes"
)

// WithServices is a Fake that also serves the declared services' routes
// (agent/api's Services): Services answers Doc, Reload answers Reloaded
// with Doc; Err, when set, fails both.
type WithServices struct {
	*Fake
	Doc     apitypes.ServiceList
	Err     error
	Reloads int
}

// ServiceList is the list the fake answers with unless told otherwise.
func ServiceList() apitypes.ServiceList {
	return apitypes.ServiceList{
		Dir: "/apps.d", Loaded: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Services: []apitypes.Service{
			{Name: "web", App: "hello", Start: apitypes.Lazy, Sockets: []string{"tcp 127.0.0.1:8081"}, State: apitypes.Listening, File: "10-web.json"},
			{Name: "api", App: "api-server", Args: []string{"--port", "9000"}, Start: apitypes.Eager, Sockets: []string{"unix /run/api.sock"}, State: apitypes.Active, RunID: 7, Starts: 1, File: "10-web.json"},
			{App: "metrics", Start: apitypes.Eager, State: apitypes.Failed, File: "20-apps.json", Error: "20-apps.json: apps \"metrics\": socket tcp 127.0.0.1:9100: listen tcp 127.0.0.1:9100: bind: address already in use"},
		},
		Problems: []apitypes.ServiceProblem{{File: "30-bad.json", Message: "not valid JSON (at byte 3: invalid character 'x'); the file is refused"}},
	}
}

// Services answers Doc.
func (f *WithServices) Services(ctx context.Context) (apitypes.ServiceList, error) {
	if f.Err != nil {
		return apitypes.ServiceList{}, f.Err
	}
	return f.Doc, nil
}

// Reload counts the call and answers Doc.
func (f *WithServices) Reload(ctx context.Context) (apitypes.Reloaded, error) {
	f.Mu.Lock()
	f.Reloads++
	f.Mu.Unlock()
	if f.Err != nil {
		return apitypes.Reloaded{}, f.Err
	}
	return apitypes.Reloaded{Added: []string{"web"}, Removed: []string{}, Changed: []string{}, Unchanged: []string{"api", "app:metrics"}, ServiceList: f.Doc}, nil
}
