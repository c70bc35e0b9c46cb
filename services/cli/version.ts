/** The version of this cim-realm (package.json; `realm --version`, `realm status`). */
export const REALM_VERSION = "0.1.0";
