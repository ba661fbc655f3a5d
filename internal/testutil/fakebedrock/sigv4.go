package fakebedrock

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go/logging"
)

// signingService is the SigV4 service name of bedrock-runtime.
const signingService = "bedrock"

// amzDateFormat is the layout of X-Amz-Date.
const amzDateFormat = "20060102T150405Z"

// sigv4Auth is a parsed "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
// Signature=..." header.
type sigv4Auth struct {
	accessKeyID, date, region, service string
	signedHeaders                      string
	signature                          string
}

func parseAuthorization(h string) (sigv4Auth, bool) {
	var a sigv4Auth
	rest, ok := strings.CutPrefix(h, "AWS4-HMAC-SHA256 ")
	if !ok {
		return a, false
	}
	var credential string
	for part := range strings.SplitSeq(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			credential = v
		case "SignedHeaders":
			a.signedHeaders = v
		case "Signature":
			a.signature = v
		}
	}
	scope := strings.Split(credential, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" || a.signedHeaders == "" || a.signature == "" {
		return a, false
	}
	a.accessKeyID, a.date, a.region, a.service = scope[0], scope[1], scope[2], scope[3]
	return a, true
}

// authenticate checks r's SigV4 signature over body against Options and
// returns the error Bedrock's frontend would send, or nil. It does nothing
// when Options.AccessKeyID is empty.
func (s *Server) authenticate(r *http.Request, body []byte) *apiError {
	if s.opts.AccessKeyID == "" {
		return nil
	}
	forbidden := func(typ, ns, msg string) *apiError {
		return &apiError{status: http.StatusForbidden, typ: typ, ns: ns, message: msg}
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return forbidden("MissingAuthenticationTokenException", nsCoral, "Missing Authentication Token")
	}
	a, ok := parseAuthorization(h)
	if !ok {
		return forbidden("IncompleteSignatureException", nsCoral,
			"Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters. Authorization="+h)
	}
	if a.accessKeyID != s.opts.AccessKeyID {
		return forbidden("UnrecognizedClientException", nsCoral, "The security token included in the request is invalid.")
	}
	if s.opts.SessionToken != "" && r.Header.Get("X-Amz-Security-Token") != s.opts.SessionToken {
		return forbidden("UnrecognizedClientException", nsCoral, "The security token included in the request is invalid.")
	}
	signedAt, err := time.Parse(amzDateFormat, r.Header.Get("X-Amz-Date"))
	if err != nil {
		return forbidden("IncompleteSignatureException", nsCoral,
			"Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization="+h)
	}
	if a.date != signedAt.Format("20060102") {
		return forbidden("InvalidSignatureException", nsCoral,
			fmt.Sprintf("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.",
				a.date, signedAt.Format("20060102"), r.Header.Get("X-Amz-Date")))
	}
	if a.service != signingService {
		return forbidden("InvalidSignatureException", nsCoral,
			fmt.Sprintf("Credential should be scoped to correct service: '%s'. ", signingService))
	}
	if a.region != s.opts.Region {
		return forbidden("InvalidSignatureException", nsCoral,
			"Credential should be scoped to a valid region. ")
	}
	want, canonical, toSign, err := s.expectedSignature(r, body, a, signedAt)
	if err != nil {
		return forbidden("InvalidSignatureException", nsCoral, msgSignature)
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(a.signature)) != 1 {
		return forbidden("InvalidSignatureException", nsCoral, fmt.Sprintf(
			"%s\n\nThe Canonical String for this request should have been\n'%s'\n\nThe String-to-Sign should have been\n'%s'\n",
			msgSignature, canonical, toSign))
	}
	return nil
}

// expectedSignature re-signs a copy of r holding only the headers the client
// signed and returns the signature with the canonical request and
// string-to-sign the signer logged. Using aws/signer/v4 itself keeps the
// fake byte-compatible with the SDK, including its double escaping of the
// path (a model ID's "%3A" is canonicalised as "%253A").
func (s *Server) expectedSignature(r *http.Request, body []byte, a sigv4Auth, at time.Time) (sig, canonical, toSign string, err error) {
	signed := strings.Split(a.signedHeaders, ";")
	u := &url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	req := &http.Request{Method: r.Method, URL: u, Host: r.Host, Header: http.Header{}}
	for _, name := range signed {
		switch name {
		case "host":
		case "content-length":
			req.ContentLength = r.ContentLength
		default:
			if vs := r.Header.Values(name); len(vs) > 0 {
				req.Header[http.CanonicalHeaderKey(name)] = slices.Clone(vs)
			}
		}
	}
	creds := aws.Credentials{
		AccessKeyID:     s.opts.AccessKeyID,
		SecretAccessKey: s.opts.SecretAccessKey,
		SessionToken:    r.Header.Get("X-Amz-Security-Token"),
	}
	if !slices.Contains(signed, "x-amz-security-token") {
		creds.SessionToken = ""
	}
	sum := sha256.Sum256(body)
	logger := logging.LoggerFunc(func(_ logging.Classification, _ string, v ...any) {
		if len(v) >= 2 {
			canonical, _ = v[0].(string)
			toSign, _ = v[1].(string)
		}
	})
	err = v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]),
		signingService, s.opts.Region, at, func(o *v4.SignerOptions) {
			o.LogSigning = true
			o.Logger = logger
		})
	if err != nil {
		return "", "", "", fmt.Errorf("sign: %w", err)
	}
	got, ok := parseAuthorization(req.Header.Get("Authorization"))
	if !ok {
		return "", "", "", fmt.Errorf("signer produced %q", req.Header.Get("Authorization"))
	}
	if got.signedHeaders != a.signedHeaders {
		// A header the client signed is missing: the signature cannot match.
		return got.signature + "-missing-headers", canonical, toSign, nil
	}
	return got.signature, canonical, toSign, nil
}
