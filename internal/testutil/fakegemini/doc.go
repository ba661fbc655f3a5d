// Package fakegemini is a scripted fake of Google's generateContent API as
// served by the Gemini API (generativelanguage.googleapis.com) and by
// Vertex AI (aiplatform.googleapis.com), plain and streamed as server-sent
// events, with Google's error bodies.
//
// It mirrors package fakeupstream: tests script answers with
// [Server.Enqueue] and [Server.SetDefault] (delays, error statuses, hung
// requests, streams cut or failed mid-way), read back what arrived with
// [Server.Requests], and [Listen] serves one on a real socket. Because
// non-test code may import it, the package does not import package testing.
//
// # Paths
//
//	POST /{v1beta|v1}/models/{model}:generateContent                        Gemini API
//	POST /{v1beta|v1}/models/{model}:streamGenerateContent?alt=sse
//	POST /{v1|v1beta1}/projects/{p}/locations/{l}/publishers/google/models/{model}:generateContent   Vertex AI
//	POST /{v1|v1beta1}/projects/{p}/locations/{l}/publishers/google/models/{model}:streamGenerateContent?alt=sse
//
// Gemini API paths need [Options.APIKey] in x-goog-api-key (or ?key=);
// Vertex paths need "Authorization: Bearer " + [Options.VertexToken]. An
// empty option disables that check. As on Google, a missing API key is 403
// PERMISSION_DENIED, a wrong one 400 INVALID_ARGUMENT with reason
// API_KEY_INVALID, and a bad Vertex token 401 UNAUTHENTICATED.
//
// # Wire details
//
// Non-streamed bodies and errors are indented by two spaces, as Google's
// JSON frontends write them. With alt=sse each chunk is one compact line
// framed "data: {json}\r\n\r\n": Google terminates SSE lines with CRLF
// (the genai SDKs split on "\r\n\r\n"; see google.golang.org/genai
// api_client.go scan, mokksy/ai-mocks#703, nyroway/nyro#265). Without
// alt=sse, streamGenerateContent answers a JSON array of the same chunks.
// Every chunk carries usageMetadata whose counts are cumulative: the last
// chunk holds the final totals, so a client must take the last value, not
// add them up. A mid-stream failure is a chunk {"error": {...}}, which the
// genai SDK surfaces as an APIError.
//
// # Token accounting
//
// promptTokenCount = the whitespace-separated words of every text part in
// contents and systemInstruction, plus 258 per inlineData part (Gemini's
// cost of one image), plus [Options.CachedTokens] (reported again as
// cachedContentTokenCount, as Google counts cached tokens inside the
// prompt). candidatesTokenCount = the number of text pieces plus one per
// function call. thoughtsTokenCount = [Options.ThoughtsTokens].
// totalTokenCount = prompt + candidates + thoughts.
package fakegemini
