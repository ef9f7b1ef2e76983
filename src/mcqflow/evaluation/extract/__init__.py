"""Answer extraction: a model's free text to one letter A–D or none, by named rules applied in order
(`rules.RULES`), over the phrase tables in `phrases` and the text analysis in `analysis`."""
