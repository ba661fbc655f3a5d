// Package anthropic is the Anthropic-compatible ingress (clients such as
// Claude Code with ANTHROPIC_BASE_URL): it sniffs Messages API bodies for
// the passthrough path, decodes them into llm.Request for translated
// routes, renders canonical answers and streams as Anthropic's Message and
// server-sent events, and writes errors in Anthropic's error schema.
package anthropic
