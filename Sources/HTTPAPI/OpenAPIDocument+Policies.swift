import RouteModel

/// `/api/policies` in the OpenAPI document: merged into `paths` and the schemas with one line each.
extension OpenAPIDocument {
    static var policyPaths: [String: [String: Any]] { [
        "/api/policies": [
            "get": op("List access-control policies, in creation order", json(array(ref("Policy")))),
            "post": linked(op("Create a policy", json(ref("Policy")), body: "PolicyUpdate"), item: "/api/policies/{id}"),
        ],
        "/api/policies/{id}": [
            "parameters": idParameter,
            "get": op("Get a policy", json(ref("Policy"))),
            "put": op("Replace a policy (every field; a rule keeps its id when it names one of the policy's rules)", json(ref("Policy")),
                      body: "PolicyUpdate", ifMatch: true),
            "delete": op("Delete a policy", json(["type": "object"]), ifMatch: true),
        ],
    ] }

    static var policySchemas: [String: Any] {
        let ports: [String: Any] = ["type": "array", "maxItems": Limits.policyRuleMaxPorts,
                                    "items": ["type": "string", "pattern": "^([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$",
                                              "description": "1..65535"],
                                    "description": "TCP/UDP only; exclusive with port_ranges"]
        let ranges: [String: Any] = ["type": "array", "maxItems": Limits.policyRuleMaxPorts, "items": ref("RulePortRange"),
                                     "description": "TCP/UDP only; exclusive with ports"]
        let groups: [String: Any] = ["type": "array", "maxItems": Limits.policyRuleMaxGroups, "items": string]
        return [
            "RulePortRange": ["type": "object", "required": ["start", "end"], "properties": [
                "start": ["type": "integer", "minimum": 1, "maximum": 65535], "end": ["type": "integer", "minimum": 1, "maximum": 65535]]],
            "PolicyRuleUpdate": ["type": "object", "required": ["name", "enabled", "bidirectional", "protocol", "action", "sources", "destinations"],
                                 "properties": [
                "id": ["type": "string", "description": "kept on update when it is one of the policy's rules"],
                "name": ["type": "string", "maxLength": Limits.nameMaxScalars],
                "description": ["type": "string", "maxLength": Limits.descriptionMaxScalars], "enabled": boolean,
                "action": ["type": "string", "enum": PolicyAction.allCases.map(\.rawValue)],
                "bidirectional": ["type": "boolean", "description": "stored; routing peers' forward rules are inbound only, as in NetBird"],
                "protocol": ["type": "string", "enum": PolicyProtocol.allCases.map(\.rawValue)],
                "sources": groups, "destinations": groups, "ports": ports, "port_ranges": ranges,
            ]],
            "PolicyUpdate": ["type": "object", "required": ["name", "enabled", "rules"], "properties": [
                "name": name, "description": ["type": "string", "maxLength": Limits.descriptionMaxScalars], "enabled": boolean,
                "rules": ["type": "array", "minItems": 1, "maxItems": Limits.policyMaxRules, "items": ref("PolicyRuleUpdate")],
                "source_posture_checks": ["type": "array", "maxItems": 0, "items": string, "description": "not supported: empty or absent"],
            ]],
            "PolicyRule": ["type": "object", "required": ["id", "name", "enabled", "action", "bidirectional", "protocol", "sources", "destinations"],
                           "properties": [
                "id": string, "name": string, "description": string, "enabled": boolean,
                "action": ["type": "string", "enum": PolicyAction.allCases.map(\.rawValue)], "bidirectional": boolean,
                "protocol": ["type": "string", "enum": PolicyProtocol.allCases.map(\.rawValue)],
                "ports": strings, "port_ranges": array(ref("RulePortRange")),
                "sources": array(ref("GroupMinimum")), "destinations": array(ref("GroupMinimum")),
            ]],
            "Policy": ["type": "object", "required": ["id", "name", "description", "enabled", "rules", "source_posture_checks"], "properties": [
                "id": string, "name": string, "description": string, "enabled": boolean, "rules": array(ref("PolicyRule")),
                "source_posture_checks": strings,
            ]],
        ]
    }
}
