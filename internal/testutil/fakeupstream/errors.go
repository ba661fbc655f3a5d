package fakeupstream

import (
	"fmt"
	"net/http"
	"strconv"
)

// apiError is one error answer before it is shaped for a flavor. Fields
// mirror OpenAI's error object; azureCode, when set, selects Azure's own
// {"code","message"} body, which Azure's frontend (not the model service)
// produces for auth, routing and throttling failures.
type apiError struct {
	status    int
	message   string
	typ       string
	param     any // string or nil
	code      any // string or nil
	azureCode string
	azureMsg  string
}

// openAIErrorBody renders OpenAI's error body: indented by four spaces, as
// api.openai.com sends it.
func openAIErrorBody(e apiError) []byte {
	return indentJSON(object{{"error", object{
		{"message", e.message},
		{"type", e.typ},
		{"param", e.param},
		{"code", e.code},
	}}}, "    ")
}

// azureErrorBody renders Azure's frontend error body.
func azureErrorBody(code, message string) []byte {
	return compactJSON(object{{"error", object{{"code", code}, {"message", message}}}})
}

// azureResourceNotFound is the exact body Azure sends for an unknown path or
// a missing or unsupported api-version, including the space after the
// second colon.
const azureResourceNotFound = `{"error":{"code":"404","message": "Resource not found"}}`

const (
	msgInvalidJSON = "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. " +
		"The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, " +
		"please contact us through our help center at help.openai.com.)"
	msgNoKey = "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth " +
		"(i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from " +
		"your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys."
	msgAzureUnauthorized = "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key " +
		"for an active subscription and use a correct regional API endpoint for your resource."
	msgServerError      = "The server had an error while processing your request. Sorry about that!"
	msgAzureServerError = "The server had an error processing your request. Sorry about that! You can retry your request, or contact us " +
		"through an Azure support request at: https://go.microsoft.com/fwlink/?linkid=2213926 if you keep seeing this error."
	msgOverloaded = "The server is overloaded or not ready yet."
)

func errInvalidJSON() apiError {
	return apiError{status: http.StatusBadRequest, message: msgInvalidJSON, typ: "invalid_request_error"}
}

func errMissingParam(name string) apiError {
	return apiError{
		status:  http.StatusBadRequest,
		message: fmt.Sprintf("Missing required parameter: '%s'.", name),
		typ:     "invalid_request_error",
		param:   name,
		code:    "missing_required_parameter",
	}
}

func errInvalidType(name, want, got string) apiError {
	return apiError{
		status:  http.StatusBadRequest,
		message: fmt.Sprintf("Invalid type for '%s': expected %s, but got %s instead.", name, want, got),
		typ:     "invalid_request_error",
		param:   name,
		code:    "invalid_type",
	}
}

func errInvalidValue(name, message string) apiError {
	return apiError{status: http.StatusBadRequest, message: message, typ: "invalid_request_error", param: name, code: "invalid_value"}
}

func errNoModel() apiError {
	return apiError{status: http.StatusBadRequest, message: "you must provide a model parameter", typ: "invalid_request_error"}
}

func errModelNotFound(model string) apiError {
	return apiError{
		status:    http.StatusNotFound,
		message:   fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", model),
		typ:       "invalid_request_error",
		code:      "model_not_found",
		azureCode: "DeploymentNotFound",
		azureMsg:  "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.",
	}
}

func errUnauthorized(presented string) apiError {
	e := apiError{
		status:    http.StatusUnauthorized,
		message:   msgNoKey,
		typ:       "invalid_request_error",
		azureCode: "401",
		azureMsg:  msgAzureUnauthorized,
	}
	if presented != "" {
		e.message = fmt.Sprintf("Incorrect API key provided: %s. You can find your API key at https://platform.openai.com/account/api-keys.", maskKey(presented))
		e.code = "invalid_api_key"
	}
	return e
}

// maskKey redacts a key the way OpenAI's 401 message does: a short prefix
// and the last four characters.
func maskKey(k string) string {
	if len(k) <= 8 {
		return "***"
	}
	return k[:3] + "***" + k[len(k)-4:]
}

func errInvalidURL(method, path string) apiError {
	return apiError{
		status:    http.StatusNotFound,
		message:   fmt.Sprintf("Invalid URL (%s %s)", method, path),
		typ:       "invalid_request_error",
		azureCode: "404",
		azureMsg:  "Resource not found",
	}
}

func errInvalidMethod(method, path string) apiError {
	return apiError{
		status:  http.StatusMethodNotAllowed,
		message: fmt.Sprintf("Invalid method for URL (%s %s)", method, path),
		typ:     "invalid_request_error",
	}
}

// errScripted is the error body for a Behavior.Status. op names the Azure
// operation ("ChatCompletions_Create", "Embeddings_Create") for Azure's 429
// message; retryAfter is the Behavior's Retry-After value, if any.
func errScripted(status int, model, op, apiVersion, retryAfter string) apiError {
	switch status {
	case http.StatusBadRequest:
		return apiError{status: status, message: "Invalid request.", typ: "invalid_request_error"}
	case http.StatusUnauthorized:
		return errUnauthorized("sk-scripted-by-fakeupstream")
	case http.StatusForbidden:
		return apiError{status: status, message: "Country, region, or territory not supported", typ: "request_forbidden",
			code: "unsupported_country_region_territory"}
	case http.StatusNotFound:
		return errModelNotFound(model)
	case http.StatusTooManyRequests:
		secs := retryAfter
		if _, err := strconv.Atoi(secs); err != nil {
			secs = "20"
		}
		if apiVersion == "" {
			apiVersion = "v1"
		}
		return apiError{
			status: status,
			message: fmt.Sprintf("Rate limit reached for %s in organization org-fakeupstream on requests per min (RPM): "+
				"Limit 3, Used 3, Requested 1. Please try again in %ss. Visit https://platform.openai.com/account/rate-limits to learn more.", model, secs),
			typ:       "requests",
			code:      "rate_limit_exceeded",
			azureCode: "429",
			azureMsg: fmt.Sprintf("Requests to the %s Operation under Azure OpenAI API version %s have exceeded token rate limit "+
				"of your current OpenAI S0 pricing tier. Please retry after %s seconds. "+
				"Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.", op, apiVersion, secs),
		}
	case http.StatusInternalServerError:
		return apiError{status: status, message: msgServerError, typ: "server_error"}
	case http.StatusServiceUnavailable:
		return apiError{status: status, message: msgOverloaded, typ: "server_error", azureCode: "ServiceUnavailable",
			azureMsg: "The service is temporarily unable to process your request. Please try again later."}
	}
	typ := "invalid_request_error"
	if status >= 500 {
		typ = "server_error"
	}
	return apiError{status: status, message: http.StatusText(status), typ: typ}
}

// writeError answers e in the flavor's shape.
func writeError(w http.ResponseWriter, flavor string, e apiError) {
	var body []byte
	switch {
	case flavor == FlavorAzure && e.azureCode != "":
		body = azureErrorBody(e.azureCode, e.azureMsg)
	case flavor == FlavorAzure && e.status == http.StatusInternalServerError:
		e.message = msgAzureServerError
		body = openAIErrorBody(e)
	default:
		body = openAIErrorBody(e)
	}
	writeBody(w, e.status, body)
}

func writeBody(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
