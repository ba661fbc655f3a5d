package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"regexp"
	"strings"
	"time"
)

// Handler serves the /admin/keys API:
//
//	POST /admin/keys               create; 201 with the secret, 400, 409
//	GET  /admin/keys               list, revoked keys included; 200
//	POST /admin/keys/{name}/revoke revoke the active key; 200 or 404
//	POST /admin/keys/{name}/rotate replace the active key's secret; 200 with
//	                               the new secret, or 404
//
// Paths may come with or without the /admin/keys prefix, so the handler
// works mounted at it directly or under http.StripPrefix. Errors are
// {"error":{"message":...}}. Handler does no authentication. Its fields
// must not be changed once it serves; it is then safe for concurrent use.
type Handler struct {
	// Store keeps the keys. Required.
	Store KeyStore
	// Now is the clock; default time.Now.
	Now func() time.Time
	// NewSecret makes secrets; default NewSecret.
	NewSecret func() (string, error)
	// Validate, if set, checks a key to be created beyond its syntax, for
	// example that its team and models exist in the configuration. Its
	// error message is shown to the client with status 400.
	Validate func(k Key) error
	// OnChange, if set, is called after a key is created, revoked or
	// rotated, so that the server can drop cached keys.
	OnChange func()
	// Logger receives internal errors, which clients see only as
	// "internal error"; default slog.Default().
	Logger *slog.Logger
}

// maxBody bounds a request body.
const maxBody = 1 << 20

var (
	nameRE    = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]*$`)
	decimalRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)
)

// maxNameLen bounds key names, which appear in logs and metric labels.
const maxNameLen = 128

// ServeHTTP routes a request; see Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/admin/keys")
	rest = strings.Trim(rest, "/")
	if rest == "" {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			h.list(w, r)
		case http.MethodPost:
			h.create(w, r)
		default:
			w.Header().Set("Allow", "GET, HEAD, POST")
			writeError(w, http.StatusMethodNotAllowed, "method %s not allowed", r.Method)
		}
		return
	}
	name, action, ok := strings.Cut(rest, "/")
	if !ok || (action != "revoke" && action != "rotate") {
		writeError(w, http.StatusNotFound, "no such endpoint")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeError(w, http.StatusMethodNotAllowed, "method %s not allowed", r.Method)
		return
	}
	if !validName(name) {
		writeError(w, http.StatusNotFound, "no active key named %q", name)
		return
	}
	if action == "revoke" {
		h.revoke(w, r, name)
	} else {
		h.rotate(w, r, name)
	}
}

// keyJSON is a key as the API shows it. Secret is set only in the answer
// to the call that made it.
type keyJSON struct {
	Name     string     `json:"name"`
	Secret   string     `json:"key,omitempty"`
	Prefix   string     `json:"prefix"`
	Team     string     `json:"team"`
	Models   []string   `json:"models"`
	Workload string     `json:"workload"`
	Budgets  []Budget   `json:"budgets"`
	Limits   Limits     `json:"limits"`
	Expires  *time.Time `json:"expires"`
	Created  time.Time  `json:"created"`
	Revoked  *time.Time `json:"revoked"`
}

func toJSON(k Key, secret string) keyJSON {
	j := keyJSON{
		Name: k.Name, Secret: secret, Prefix: k.Prefix, Team: k.Team, Models: k.Models, Workload: k.Workload,
		Budgets: k.Budgets, Limits: k.Limits, Created: k.Created, Expires: timePtr(k.Expires), Revoked: timePtr(k.Revoked),
	}
	if j.Models == nil {
		j.Models = []string{}
	}
	if j.Budgets == nil {
		j.Budgets = []Budget{}
	}
	return j
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// createRequest is the body of POST /admin/keys.
type createRequest struct {
	Name     string     `json:"name"`
	Team     string     `json:"team"`
	Models   []string   `json:"models"`
	Workload string     `json:"workload"`
	Budgets  []Budget   `json:"budgets"`
	Limits   Limits     `json:"limits"`
	Expires  *time.Time `json:"expires"`
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	var req createRequest
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid request body: %s", err.Error())
		return
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "invalid request body: data after the JSON object")
		return
	}
	now := h.now()
	k := Key{
		Name: req.Name, Team: req.Team, Workload: req.Workload,
		Models: req.Models, Budgets: req.Budgets, Limits: req.Limits, Created: now,
	}
	if req.Expires != nil {
		k.Expires = req.Expires.UTC().Truncate(time.Microsecond)
	}
	if err := check(&k, now); err != nil {
		writeError(w, http.StatusBadRequest, "%s", err.Error())
		return
	}
	if h.Validate != nil {
		if err := h.Validate(k); err != nil {
			writeError(w, http.StatusBadRequest, "%s", err.Error())
			return
		}
	}
	secret, err := h.secret()
	if err != nil {
		h.internal(w, r, "create key", err)
		return
	}
	k.Hash, k.Prefix = HashSecret(secret), secret[:PrefixLen]
	switch err := h.Store.CreateKey(r.Context(), k); {
	case errors.Is(err, ErrKeyExists):
		writeError(w, http.StatusConflict, "an active key named %q exists; revoke or rotate it", k.Name)
		return
	case err != nil:
		h.internal(w, r, "create key", err)
		return
	}
	h.changed()
	writeJSON(w, http.StatusCreated, toJSON(k, secret))
}

// check validates k's syntax and fills defaults, reporting the first
// problem with its field.
func check(k *Key, now time.Time) error {
	if !validName(k.Name) {
		return fmt.Errorf("name: must match %s and be at most %d characters", nameRE, maxNameLen)
	}
	for i, m := range k.Models {
		if _, err := path.Match(m, ""); m == "" || err != nil {
			return fmt.Errorf("models[%d]: %q is not a valid glob (path.Match syntax)", i, m)
		}
	}
	for i := range k.Budgets {
		b := &k.Budgets[i]
		if !decimalRE.MatchString(b.Limit) {
			return fmt.Errorf("budgets[%d].limit: %q is not a non-negative decimal amount such as \"5.00\"", i, b.Limit)
		}
		switch b.Period {
		case "daily", "weekly", "monthly", "total":
		default:
			return fmt.Errorf("budgets[%d].period: %q is not one of daily, weekly, monthly, total", i, b.Period)
		}
		switch b.Mode {
		case "":
			b.Mode = "hard"
		case "hard", "soft":
		default:
			return fmt.Errorf("budgets[%d].mode: %q is not one of hard, soft", i, b.Mode)
		}
		if _, err := time.LoadLocation(b.Timezone); b.Timezone != "" && err != nil {
			return fmt.Errorf("budgets[%d].timezone: unknown time zone %q", i, b.Timezone)
		}
	}
	if k.Limits.RPM < 0 {
		return errors.New("limits.rpm: must not be negative")
	}
	if k.Limits.TPM < 0 {
		return errors.New("limits.tpm: must not be negative")
	}
	if !k.Expires.IsZero() && !k.Expires.After(now) {
		return errors.New("expires: must be in the future")
	}
	return nil
}

func validName(name string) bool { return len(name) <= maxNameLen && nameRE.MatchString(name) }

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	keys, err := h.Store.Keys(r.Context())
	if err != nil {
		h.internal(w, r, "list keys", err)
		return
	}
	out := struct {
		Keys []keyJSON `json:"keys"`
	}{Keys: make([]keyJSON, 0, len(keys))}
	for _, k := range keys {
		out.Keys = append(out.Keys, toJSON(k, ""))
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) revoke(w http.ResponseWriter, r *http.Request, name string) {
	at := h.now()
	switch err := h.Store.RevokeKey(r.Context(), name, at); {
	case errors.Is(err, ErrKeyNotFound):
		writeError(w, http.StatusNotFound, "no active key named %q", name)
		return
	case err != nil:
		h.internal(w, r, "revoke key", err)
		return
	}
	h.changed()
	// KeyStore.RevokeKey returns no key; find the one just revoked, the
	// last of that name revoked at this instant.
	keys, err := h.Store.Keys(r.Context())
	if err != nil {
		h.internal(w, r, "revoke key: read back", err)
		return
	}
	for i := len(keys) - 1; i >= 0; i-- {
		if keys[i].Name == name && keys[i].Revoked.Equal(at) {
			writeJSON(w, http.StatusOK, toJSON(keys[i], ""))
			return
		}
	}
	h.internal(w, r, "revoke key", fmt.Errorf("revoked key %q not found on read back", name))
}

func (h *Handler) rotate(w http.ResponseWriter, r *http.Request, name string) {
	secret, err := h.secret()
	if err != nil {
		h.internal(w, r, "rotate key", err)
		return
	}
	k, err := h.Store.RotateKey(r.Context(), name, HashSecret(secret), secret[:PrefixLen], h.now())
	switch {
	case errors.Is(err, ErrKeyNotFound):
		writeError(w, http.StatusNotFound, "no active key named %q", name)
		return
	case err != nil:
		h.internal(w, r, "rotate key", err)
		return
	}
	h.changed()
	writeJSON(w, http.StatusOK, toJSON(k, secret))
}

// now returns the current time as the stores keep it: UTC, microseconds.
func (h *Handler) now() time.Time {
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	return now().UTC().Truncate(time.Microsecond)
}

func (h *Handler) secret() (string, error) {
	gen := NewSecret
	if h.NewSecret != nil {
		gen = h.NewSecret
	}
	s, err := gen()
	if err != nil {
		return "", err
	}
	if len(s) < 2*PrefixLen {
		return "", fmt.Errorf("new secret: %d characters, want at least %d", len(s), 2*PrefixLen)
	}
	return s, nil
}

func (h *Handler) changed() {
	if h.OnChange != nil {
		h.OnChange()
	}
}

// internal logs err and answers 500 without its details.
func (h *Handler) internal(w http.ResponseWriter, r *http.Request, op string, err error) {
	log := h.Logger
	if log == nil {
		log = slog.Default()
	}
	log.ErrorContext(r.Context(), "admin: "+op, "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "internal error")
}

func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	var body struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	body.Error.Message = fmt.Sprintf(format, args...)
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only plain data types are marshaled
		http.Error(w, `{"error":{"message":"internal error"}}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
