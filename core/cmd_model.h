/* cmd_model.h -- CLI subcommands working on checkpoints (info, logits, export, trace, init, lmeval, evaltask). */
#ifndef RWKV_CMD_MODEL_H
#define RWKV_CMD_MODEL_H
#ifndef RWKVLAB_VERSION
#define RWKVLAB_VERSION "unknown"
#endif
int cmd_info(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_trace(int argc, char **argv);
int cmd_lmeval(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_evaltask(int argc, char **argv);
#endif
