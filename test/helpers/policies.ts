// Policies the workflow tests share. Their approvals take no step-up code
// (step_up: optional), so a test can decide many requests within one TOTP
// step; test/services/step-up.test.ts covers the default, required.

export const WORKFLOW_POLICY = `
defaults:
  max_duration: 8h
  request_ttl: 1h
  clock_skew: 60s
roles:
  web-prod:
    description: production web servers
    principals: [deploy]
    requesters: [group:engineering]
    max_duration: 4h
    approval:
      approvers: [group:sre-leads, user:carol]
      required: 1
      step_up: optional
    auto_approve:
      - groups: [oncall]
        max_duration: 2h
    break_glass:
      groups: [sre]
      max_duration: 1h
    certificate:
      extensions: [permit-pty, permit-port-forwarding]
      source_address: [10.0.0.0/8, 127.0.0.1/32]
  db-prod:
    principals: [dba, postgres]
    requesters: [group:engineering]
    max_duration: 2h
    require_ticket: true
    approval:
      approvers: [group:sre-leads]
      required: 2
      step_up: optional
    certificate:
      force_command: /usr/local/bin/db-shell
notifications:
  webhooks:
    - url: http://127.0.0.1:9/hook
`;
