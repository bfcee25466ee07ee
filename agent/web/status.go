package web

import "net/http"

// serveStatus sends the status document (agent/status builds it).
func (s *Server) serveStatus(w http.ResponseWriter, r *http.Request) {
	body, err := s.status.JSON()
	if err != nil {
		http.Error(w, "status: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h["Content-Type"] = s.hdr.json
	h["Cache-Control"] = s.hdr.noStore
	h["Content-Security-Policy"] = s.hdr.cspNone
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}
