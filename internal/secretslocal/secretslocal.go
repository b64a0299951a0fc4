// Package secretslocal is a stand-in for AWS Secrets Manager's
// GetSecretValue, for tests: no emulator of the service runs here. It is an
// http.Handler reached the way the real service is, through its endpoint
// (AWS_ENDPOINT_URL_SECRETS_MANAGER), and it holds the requests to the
// service's JSON protocol: POST /, Content-Type application/x-amz-json-1.1,
// X-Amz-Target secretsmanager.GetSecretValue, a SigV4 Authorization header
// for service secretsmanager, and a body naming SecretId. Anything else is
// refused the way the service refuses it, with a typed JSON error.
package secretslocal

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
)

// Server holds secrets by ARN (or name).
type Server struct {
	mu      sync.Mutex
	secrets map[string]string
	calls   int
}

// New returns a server holding secrets.
func New(secrets map[string]string) *Server {
	s := &Server{secrets: map[string]string{}}
	for k, v := range secrets {
		s.secrets[k] = v
	}
	return s
}

// Calls returns how many GetSecretValue calls were answered.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method != http.MethodPost || r.URL.Path != "/":
		fail(w, http.StatusNotFound, "UnknownOperationException", "POST / only")
		return
	case r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue":
		fail(w, http.StatusBadRequest, "UnknownOperationException", "X-Amz-Target "+r.Header.Get("X-Amz-Target")+" is not served")
		return
	case r.Header.Get("Content-Type") != "application/x-amz-json-1.1":
		fail(w, http.StatusBadRequest, "SerializationException", "Content-Type must be application/x-amz-json-1.1")
		return
	case !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") ||
		!strings.Contains(r.Header.Get("Authorization"), "/secretsmanager/aws4_request"):
		fail(w, http.StatusForbidden, "MissingAuthenticationTokenException", "the request is not signed with SigV4 for secretsmanager")
		return
	}
	var in struct{ SecretId string }
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&in); err != nil || in.SecretId == "" {
		fail(w, http.StatusBadRequest, "InvalidParameterException", "SecretId is required")
		return
	}
	s.mu.Lock()
	v, ok := s.secrets[in.SecretId]
	s.calls++
	s.mu.Unlock()
	if !ok {
		fail(w, http.StatusBadRequest, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	json.NewEncoder(w).Encode(map[string]any{"ARN": in.SecretId, "Name": in.SecretId, "SecretString": v, "VersionId": "v1"})
}

func fail(w http.ResponseWriter, status int, kind, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"__type": kind, "message": msg})
}
