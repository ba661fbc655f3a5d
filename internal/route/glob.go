package route

// globMatch reports whether s matches pattern, where '*' matches any run of
// bytes (including '/' and ':', which model names contain) and '?' matches
// one byte; every other byte matches itself. It does not allocate.
func globMatch(pattern, s string) bool {
	px, sx := 0, 0
	nextPx, nextSx := 0, 0
	for px < len(pattern) || sx < len(s) {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '*':
				nextPx, nextSx = px, sx+1
				px++
				continue
			case '?':
				if sx < len(s) {
					px++
					sx++
					continue
				}
			default:
				if sx < len(s) && s[sx] == c {
					px++
					sx++
					continue
				}
			}
		}
		if 0 < nextSx && nextSx <= len(s) {
			px, sx = nextPx, nextSx
			continue
		}
		return false
	}
	return true
}

// MatchAny reports whether s matches one of patterns, with globMatch's
// rules: the glob syntax of agreement scopes and policies everywhere.
func MatchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if globMatch(p, s) {
			return true
		}
	}
	return false
}
