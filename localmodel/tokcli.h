/* tokcli.h - `llmpin tokenize FILE [--special] [--no-bos] [--ids-only] TEXT|-`. */
#ifndef LLMPIN_TOKCLI_H
#define LLMPIN_TOKCLI_H

/* argv: the arguments after "tokenize". Returns the exit status. */
int lm_tokenize_cli(int argc, char **argv);

#endif
