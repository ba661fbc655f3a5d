package proxy

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/multipolar/multipolar/internal/apierr"
)

// speaksAPI reports whether an upstream error body is a well-formed error
// of the client's API, so it can pass through as it is. Azure's front end,
// for one, answers some errors with {"error":{"code","message"}} and no
// "type", which OpenAI's SDKs and schema expect.
func speaksAPI(api API, body []byte) bool {
	switch api {
	case APIOpenAI:
		var e struct {
			Error *struct {
				Message *string `json:"message"`
				Type    *string `json:"type"`
			} `json:"error"`
		}
		return json.Unmarshal(body, &e) == nil && e.Error != nil && e.Error.Message != nil && e.Error.Type != nil
	case APIAnthropic:
		var e struct {
			Type  string `json:"type"`
			Error *struct {
				Message *string `json:"message"`
				Type    *string `json:"type"`
			} `json:"error"`
		}
		return json.Unmarshal(body, &e) == nil && e.Type == "error" && e.Error != nil && e.Error.Message != nil && e.Error.Type != nil
	}
	return false
}

// upstreamError turns a non-2xx upstream answer the client must see into
// the gateway's error, using the provider's own decoding where it has one.
func upstreamError(t *Target, resp *http.Response, body []byte) *apierr.Error {
	if t.Chat != nil {
		return t.Chat.DecodeError(resp, body)
	}
	k := apierr.UpstreamUnavailable
	switch resp.StatusCode {
	case http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusConflict:
		k = apierr.BadRequest
	case http.StatusNotFound:
		k = apierr.NotFound
	case http.StatusRequestEntityTooLarge:
		k = apierr.TooLarge
	case http.StatusTooManyRequests:
		k = apierr.RateLimited
	case http.StatusRequestTimeout, http.StatusGatewayTimeout:
		k = apierr.UpstreamTimeout
	}
	return apierr.New(k, "provider %q answered HTTP %s", t.Name, strconv.Itoa(resp.StatusCode))
}

// writeUpstreamError writes a non-2xx passthrough answer: as it came when it
// already speaks the client's API, else re-rendered in the client's schema.
func (e *Engine) writeUpstreamError(w http.ResponseWriter, t *Target, call *Call, resp *http.Response, res *Result) {
	body := readLimited(resp.Body)
	res.Provider, res.Status = t.Name, resp.StatusCode
	h := w.Header()
	h["X-Multipolar-Provider"] = []string{t.Name}
	e.setRouteHeader(w, call, res)
	if speaksAPI(call.API, body) {
		h["Content-Type"] = headerJSON
		h["Content-Length"] = []string{strconv.Itoa(len(body))}
		w.WriteHeader(resp.StatusCode)
		n, _ := w.Write(body)
		res.Bytes = int64(n)
		return
	}
	ae := upstreamError(t, resp, body)
	res.Err, res.Status = ae, ae.Kind.Status()
	call.Ingress.WriteError(w, ae)
}
