"""Cross-cutting helpers usable from every layer."""
