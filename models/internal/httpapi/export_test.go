package httpapi

// Len is how many encodings c keeps.
func (c *Tools) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}
