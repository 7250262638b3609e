/* Handlers of bastion.v1.Auth that need the security components: IssueToken (password login on
 * the authenticator's scrypt pool, never on the loop) and CanI (the policy's answer for the
 * caller). */
#ifndef BASTION_SERVER_AUTHSVC_H
#define BASTION_SERVER_AUTHSVC_H

#include "call.h"

enum call_next authsvc_issue_token(struct call *c);
enum call_next authsvc_can_i(struct call *c);

#endif
