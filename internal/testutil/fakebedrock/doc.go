// Package fakebedrock is a scripted fake of the Amazon Bedrock Runtime
// Converse and ConverseStream APIs that speaks their wire formats: JSON for
// Converse, the binary AWS event stream (application/vnd.amazon.eventstream)
// for ConverseStream, SigV4-authenticated requests and Bedrock's
// restJson1 error responses.
//
// It mirrors package fakeupstream: tests script answers with
// [Server.Enqueue] and [Server.SetDefault] (delays, error statuses, hung
// requests, streams cut or failed mid-way), read back what arrived with
// [Server.Requests], and [Listen] serves one on a real socket. Because
// non-test code may import it, the package does not import package testing.
//
// # Paths
//
//	POST /model/{modelId}/converse          JSON
//	POST /model/{modelId}/converse-stream   application/vnd.amazon.eventstream
//
// {modelId} is URL-path-escaped by clients: a foundation model ID
// ("anthropic.claude-sonnet-4-5-20250929-v1:0" → "...v1%3A0"), an
// inference profile ID ("us.anthropic...") or an ARN, whose slashes arrive as
// %2F. [Request.Model] holds the unescaped ID.
//
// # Authentication
//
// When [Options.AccessKeyID] is set every request must carry a SigV4
// Authorization header for service "bedrock" in [Options.Region]. The fake
// recomputes the signature with aws/signer/v4 over the headers the client
// listed in SignedHeaders and the SHA-256 of the body, and answers
// mismatches as Bedrock's frontend does: 403 with x-amzn-ErrorType
// InvalidSignatureException and a message that quotes the canonical string
// and string-to-sign it expected. The clock skew check is not implemented,
// so clients may sign with real time while [Options.Now] is fixed.
//
// # Wire details
//
// Bodies are compact JSON with keys sorted, as Bedrock's serializer writes
// them. Every stream event payload carries Bedrock's "p" padding field (a
// prefix of "abc...XYZ0-9" whose length varies to hide token sizes); here its
// length is derived from the payload so transcripts are reproducible.
// Errors carry x-amzn-ErrorType "<Type>:http://internal.amazon.com/coral/..."
// and a {"message": ...} body; SDKs strip everything after the colon.
//
// # Token accounting
//
// inputTokens = 4 per message + the whitespace-separated words of every text
// block in messages and system; outputTokens = the number of content deltas
// (text pieces plus tool-input pieces). Cache tokens come from
// [Options.CacheReadTokens] and [Options.CacheWriteTokens] and, as on
// Bedrock, are not part of inputTokens but are part of totalTokens.
package fakebedrock
