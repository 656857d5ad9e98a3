// Names of people and groups: what policy files, certificates' key IDs and
// log lines can carry without quoting.

/** Like a Unix login name: lower case, digits, `_ . -`, not starting with `-` or `.`. */
export const USER_NAME = /^[a-z_][a-z0-9_.-]{0,63}$/;
export const GROUP_NAME = /^[a-z0-9][a-z0-9_.-]{0,63}$/;

export function validUserName(name: unknown): name is string {
  return typeof name === 'string' && USER_NAME.test(name);
}

export function validGroupName(name: unknown): name is string {
  return typeof name === 'string' && GROUP_NAME.test(name);
}
