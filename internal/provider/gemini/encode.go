package gemini

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"strings"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
)

// Request wire types (GenerateContentRequest). Field order is the order
// Google documents them in.
type (
	genRequest struct {
		Contents          []content         `json:"contents"`
		SystemInstruction *content          `json:"systemInstruction,omitempty"`
		Tools             []tool            `json:"tools,omitempty"`
		ToolConfig        *toolConfig       `json:"toolConfig,omitempty"`
		GenerationConfig  *generationConfig `json:"generationConfig,omitempty"`
	}
	content struct {
		Role  string `json:"role,omitempty"`
		Parts []part `json:"parts"`
	}
	part struct {
		Text             string            `json:"text,omitempty"`
		Thought          bool              `json:"thought,omitempty"`
		InlineData       *blob             `json:"inlineData,omitempty"`
		FileData         *fileData         `json:"fileData,omitempty"`
		FunctionCall     *functionCall     `json:"functionCall,omitempty"`
		FunctionResponse *functionResponse `json:"functionResponse,omitempty"`
		ThoughtSignature string            `json:"thoughtSignature,omitempty"`
	}
	blob struct {
		MimeType string `json:"mimeType"`
		Data     string `json:"data"`
	}
	fileData struct {
		MimeType string `json:"mimeType"`
		FileURI  string `json:"fileUri"`
	}
	functionCall struct {
		ID   string          `json:"id,omitempty"`
		Name string          `json:"name"`
		Args json.RawMessage `json:"args,omitempty"`
	}
	functionResponse struct {
		Name     string          `json:"name"`
		Response json.RawMessage `json:"response"`
	}
	tool struct {
		FunctionDeclarations []functionDeclaration `json:"functionDeclarations"`
	}
	functionDeclaration struct {
		Name                 string          `json:"name"`
		Description          string          `json:"description,omitempty"`
		ParametersJSONSchema json.RawMessage `json:"parametersJsonSchema,omitempty"`
	}
	toolConfig struct {
		FunctionCallingConfig functionCallingConfig `json:"functionCallingConfig"`
	}
	functionCallingConfig struct {
		Mode                 string   `json:"mode"`
		AllowedFunctionNames []string `json:"allowedFunctionNames,omitempty"`
	}
	generationConfig struct {
		StopSequences      []string        `json:"stopSequences,omitempty"`
		ResponseMimeType   string          `json:"responseMimeType,omitempty"`
		ResponseJSONSchema json.RawMessage `json:"responseJsonSchema,omitempty"`
		CandidateCount     int             `json:"candidateCount,omitempty"`
		MaxOutputTokens    int             `json:"maxOutputTokens,omitempty"`
		Temperature        *float64        `json:"temperature,omitempty"`
		TopP               *float64        `json:"topP,omitempty"`
		TopK               *int            `json:"topK,omitempty"`
		Seed               *int64          `json:"seed,omitempty"`
		PresencePenalty    *float64        `json:"presencePenalty,omitempty"`
		FrequencyPenalty   *float64        `json:"frequencyPenalty,omitempty"`
		ThinkingConfig     *thinkingConfig `json:"thinkingConfig,omitempty"`
	}
	thinkingConfig struct {
		IncludeThoughts bool `json:"includeThoughts,omitempty"`
		ThinkingBudget  *int `json:"thinkingBudget,omitempty"`
	}
)

// skipSignature is the thoughtSignature Google documents for function calls
// whose real signature is unknown (history from another model or a client
// that drops it): https://ai.google.dev/gemini-api/docs/thought-signatures.
const skipSignature = "skip_thought_signature_validator"

// effortBudget maps OpenAI's reasoning_effort to a thinking budget as
// Google's OpenAI compatibility layer does
// (https://ai.google.dev/gemini-api/docs/openai#thinking).
var effortBudget = map[string]int{"none": 0, "minimal": 1024, "low": 1024, "medium": 8192, "high": 24576}

// encodeRequest returns the JSON body for r.
func (p *Provider) encodeRequest(r *llm.Request) ([]byte, error) {
	if len(r.Unsupported) > 0 {
		return nil, p.errUnsupported(r.Unsupported[0])
	}
	if r.N > 1 {
		return nil, p.errUnsupported("n").WithParam("n")
	}
	var g genRequest
	if sys := p.systemInstruction(r.System); sys != nil {
		g.SystemInstruction = sys
	}
	if err := p.encodeMessages(&g, r.Messages); err != nil {
		return nil, err
	}
	if len(r.Tools) > 0 {
		decls := make([]functionDeclaration, len(r.Tools))
		for i, t := range r.Tools {
			decls[i] = functionDeclaration{Name: t.Name, Description: t.Description, ParametersJSONSchema: cleanSchema(t.Parameters)}
		}
		g.Tools = []tool{{FunctionDeclarations: decls}}
		switch r.ToolChoice.Mode {
		case llm.ToolChoiceNone:
			g.ToolConfig = &toolConfig{functionCallingConfig{Mode: "NONE"}}
		case llm.ToolChoiceRequired:
			g.ToolConfig = &toolConfig{functionCallingConfig{Mode: "ANY"}}
		case llm.ToolChoiceNamed:
			g.ToolConfig = &toolConfig{functionCallingConfig{Mode: "ANY", AllowedFunctionNames: []string{r.ToolChoice.Name}}}
		}
	}
	gc, err := p.generationConfig(r)
	if err != nil {
		return nil, err
	}
	g.GenerationConfig = gc
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&g); err != nil {
		// Only invalid json.RawMessage (tool schemas) can fail here.
		return nil, apierr.Wrap(apierr.BadRequest, err, "a JSON schema in the request is not valid JSON")
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func (p *Provider) systemInstruction(sys []llm.Part) *content {
	var parts []part
	for _, s := range sys {
		if s.Type == llm.PartText && s.Text != "" {
			parts = append(parts, part{Text: s.Text})
		}
	}
	if len(parts) == 0 {
		return nil
	}
	return &content{Parts: parts}
}

func (p *Provider) generationConfig(r *llm.Request) (*generationConfig, error) {
	gc := generationConfig{
		StopSequences:    r.Stop,
		MaxOutputTokens:  r.MaxTokens,
		Temperature:      r.Temperature,
		TopP:             r.TopP,
		TopK:             r.TopK,
		Seed:             r.Seed,
		PresencePenalty:  r.PresencePenalty,
		FrequencyPenalty: r.FrequencyPenalty,
	}
	if f := r.ResponseFormat; f != nil {
		switch f.Type {
		case llm.FormatJSONObject:
			gc.ResponseMimeType = "application/json"
		case llm.FormatJSONSchema:
			gc.ResponseMimeType = "application/json"
			gc.ResponseJSONSchema = cleanSchema(f.Schema)
		}
	}
	switch {
	case r.ThinkingBudget > 0:
		b := r.ThinkingBudget
		gc.ThinkingConfig = &thinkingConfig{IncludeThoughts: true, ThinkingBudget: &b}
	case r.ReasoningEffort != "":
		b, ok := effortBudget[r.ReasoningEffort]
		if !ok {
			return nil, apierr.New(apierr.BadRequest, "reasoning effort %q is not supported by provider %q", r.ReasoningEffort, p.name).WithParam("reasoning_effort")
		}
		gc.ThinkingConfig = &thinkingConfig{ThinkingBudget: &b}
	}
	if gc.isZero() {
		return nil, nil
	}
	return &gc, nil
}

func (gc *generationConfig) isZero() bool {
	return len(gc.StopSequences) == 0 && gc.ResponseMimeType == "" && gc.MaxOutputTokens == 0 &&
		gc.Temperature == nil && gc.TopP == nil && gc.TopK == nil && gc.Seed == nil &&
		gc.PresencePenalty == nil && gc.FrequencyPenalty == nil && gc.ThinkingConfig == nil
}

// encodeMessages appends r's turns to g.Contents, merging consecutive turns
// of one role.
func (p *Provider) encodeMessages(g *genRequest, msgs []llm.Message) error {
	names := make(map[string]string) // tool call ID -> function name
	for i := range msgs {
		m := &msgs[i]
		role := "user"
		if m.Role == llm.RoleAssistant {
			role = "model"
		}
		var parts []part
		for j := range m.Content {
			pt, ok, err := p.encodePart(&m.Content[j], names)
			if err != nil {
				return err
			}
			if ok {
				parts = append(parts, pt)
			}
		}
		if len(parts) == 0 {
			continue
		}
		if role == "model" {
			markFirstCall(parts)
		}
		if n := len(g.Contents); n > 0 && g.Contents[n-1].Role == role {
			g.Contents[n-1].Parts = append(g.Contents[n-1].Parts, parts...)
			continue
		}
		g.Contents = append(g.Contents, content{Role: role, Parts: parts})
	}
	return nil
}

// markFirstCall gives the first function call of a model turn the
// placeholder signature when it has none. Gemini validates only that one:
// of parallel calls only the first carries a signature
// (https://ai.google.dev/gemini-api/docs/thought-signatures).
func markFirstCall(parts []part) {
	for i := range parts {
		if parts[i].FunctionCall != nil {
			if parts[i].ThoughtSignature == "" {
				parts[i].ThoughtSignature = skipSignature
			}
			return
		}
	}
}

// encodePart converts one canonical part; ok is false for parts Gemini does
// not take back (thinking, empty text).
func (p *Provider) encodePart(c *llm.Part, names map[string]string) (part, bool, error) {
	switch c.Type {
	case llm.PartText:
		return part{Text: c.Text}, c.Text != "", nil
	case llm.PartThinking:
		return part{}, false, nil
	case llm.PartImage:
		return p.encodeImage(c.Image)
	case llm.PartToolCall:
		tc := c.ToolCall
		if tc == nil {
			return part{}, false, nil
		}
		names[tc.ID] = tc.Name
		args := json.RawMessage(strings.TrimSpace(tc.Arguments))
		if len(args) == 0 {
			args = json.RawMessage("{}")
		} else if !json.Valid(args) || args[0] != '{' {
			return part{}, false, apierr.New(apierr.BadRequest, "tool call %q has arguments that are not a JSON object", tc.ID).WithParam("messages")
		}
		return part{FunctionCall: &functionCall{Name: tc.Name, Args: args}, ThoughtSignature: c.Signature}, true, nil
	case llm.PartToolResult:
		return p.encodeToolResult(c.ToolResult, names)
	}
	return part{}, false, nil
}

func (p *Provider) encodeToolResult(tr *llm.ToolResult, names map[string]string) (part, bool, error) {
	if tr == nil {
		return part{}, false, nil
	}
	name := tr.Name
	if name == "" {
		name = names[tr.CallID]
	}
	if name == "" {
		return part{}, false, apierr.New(apierr.BadRequest,
			"tool result %q does not answer any earlier tool call; provider %q needs the function's name", tr.CallID, p.name).WithParam("messages")
	}
	var text strings.Builder
	for _, c := range tr.Content {
		switch c.Type {
		case llm.PartText:
			text.WriteString(c.Text)
		case llm.PartImage:
			return part{}, false, p.errUnsupported("tool_result_image")
		}
	}
	key := "output"
	if tr.IsError {
		key = "error"
	}
	resp := make([]byte, 0, len(key)+text.Len()+8)
	resp = append(resp, '{')
	resp = llm.AppendJSONString(resp, key)
	resp = append(resp, ':')
	resp = llm.AppendJSONString(resp, text.String())
	resp = append(resp, '}')
	return part{FunctionResponse: &functionResponse{Name: name, Response: resp}}, true, nil
}

// imageTypes maps URL extensions to the image MIME types Gemini takes
// (https://ai.google.dev/gemini-api/docs/image-understanding).
var imageTypes = map[string]string{
	".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
	".heic": "image/heic", ".heif": "image/heif", ".gif": "image/gif",
}

func (p *Provider) encodeImage(img *llm.Image) (part, bool, error) {
	if img == nil {
		return part{}, false, nil
	}
	if img.Data != "" {
		if img.MediaType == "" {
			return part{}, false, apierr.New(apierr.BadRequest, "an inline image needs a media type").WithParam("messages")
		}
		return part{InlineData: &blob{MimeType: img.MediaType, Data: img.Data}}, true, nil
	}
	u := img.URL
	if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "gs://") {
		return part{}, false, p.errUnsupported("image_url")
	}
	mt := img.MediaType
	if mt == "" {
		clean := u
		if i := strings.IndexAny(clean, "?#"); i >= 0 {
			clean = clean[:i]
		}
		mt = imageTypes[strings.ToLower(path.Ext(clean))]
	}
	if mt == "" {
		return part{}, false, apierr.New(apierr.BadRequest,
			"provider %q needs the media type of image URLs; this URL has no image file extension, send the image inline", p.name).WithParam("messages")
	}
	return part{FileData: &fileData{MimeType: mt, FileURI: u}}, true, nil
}

// cleanSchema returns schema without a top-level "$schema" keyword, which
// is outside the JSON Schema subset Gemini documents; anything else is sent
// as the client wrote it. An empty or null schema is omitted.
func cleanSchema(schema json.RawMessage) json.RawMessage {
	s := bytes.TrimSpace(schema)
	if len(s) == 0 || bytes.Equal(s, []byte("null")) {
		return nil
	}
	if !bytes.Contains(s, []byte(`"$schema"`)) {
		return s
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(s, &m); err != nil {
		return s // let the encoder report it
	}
	if _, ok := m["$schema"]; !ok {
		return s
	}
	delete(m, "$schema")
	out, err := marshalSorted(m)
	if err != nil {
		return s
	}
	return out
}

// marshalSorted marshals m; encoding/json sorts map keys, so the output is
// stable for golden tests.
func marshalSorted(m map[string]json.RawMessage) (json.RawMessage, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("marshal schema: %w", err)
	}
	return b, nil
}
