/* The authorization decision a call carries: made by the authz stage (rbac/), read by the
 * handler and by audit. `rule` names what decided ("role:viewer via binding:viewers",
 * "deny:no-prod-deletes", "no rule matched") for the audit record and for explain. */
#ifndef BASTION_COMMON_DECISION_H
#define BASTION_COMMON_DECISION_H

enum bst_verdict {
    BST_VERDICT_NONE = 0, /* not evaluated (e.g. authentication failed first) */
    BST_VERDICT_ALLOW,
    BST_VERDICT_DENY,
};

struct bst_decision {
    enum bst_verdict verdict;
    char rule[160];   /* the deciding rule, or "" */
    char reason[256]; /* one sentence for the caller and the audit */
};

#endif
