//! The form the terminal UI shows for a method's arguments, a property's new value, a goal or a
//! command: one text input per declared field, checked against the field's type on submit.

use serde_json::{Map, Value};
use switchboard_idl::{Field, Interface, Type};

use crate::types::{Types, type_name};

/// What submitting the form does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Call the method of this name.
    Call(String),
    /// Set the property of this name.
    SetProperty(String),
    /// Start a goal of the action of this name.
    StartGoal(String),
    /// Send the command of this name.
    SendCommand(String),
}

impl Purpose {
    /// The verb and member, for the form's title: `call boost`.
    pub(crate) fn title(&self) -> String {
        match self {
            Purpose::Call(name) => format!("call {name}"),
            Purpose::SetProperty(name) => format!("set {name}"),
            Purpose::StartGoal(name) => format!("run {name}"),
            Purpose::SendCommand(name) => format!("send {name}"),
        }
    }
}

/// One input per field, the field being edited, and why the last submit was refused.
#[derive(Debug, Clone)]
pub(crate) struct Form {
    pub(crate) purpose: Purpose,
    pub(crate) fields: Vec<Field>,
    pub(crate) inputs: Vec<String>,
    pub(crate) selected: usize,
    pub(crate) error: Option<String>,
}

impl Form {
    /// An empty form for `fields`.
    pub(crate) fn new(purpose: Purpose, fields: &[Field]) -> Self {
        Form {
            purpose,
            fields: fields.to_vec(),
            inputs: vec![String::new(); fields.len()],
            selected: 0,
            error: None,
        }
    }

    /// A form for `fields` filled in from `value` (a property's current value).
    pub(crate) fn prefilled(
        purpose: Purpose,
        fields: &[Field],
        iface: &Interface,
        value: Option<&Value>,
    ) -> Self {
        let mut form = Form::new(purpose, fields);
        if let Some(Value::Object(map)) = value {
            let types = Types { iface };
            for (input, field) in form.inputs.iter_mut().zip(fields) {
                if let Some(value) = map.get(&field.name) {
                    *input = editable_text(&types, &field.ty, value);
                }
            }
        }
        form
    }

    /// The field's label: `extraCelsius: float`, `reason: string? (optional)`.
    pub(crate) fn label(&self, index: usize) -> String {
        let field = &self.fields[index];
        let optional = if matches!(field.ty, Type::Optional { .. }) { " (optional)" } else { "" };
        format!("{}: {}{optional}", field.name, type_name(&field.ty))
    }

    pub(crate) fn next_field(&mut self) {
        if !self.fields.is_empty() {
            self.selected = (self.selected + 1) % self.fields.len();
        }
    }

    pub(crate) fn previous_field(&mut self) {
        if !self.fields.is_empty() {
            self.selected = (self.selected + self.fields.len() - 1) % self.fields.len();
        }
    }

    /// Types `c` into the selected input.
    pub(crate) fn type_char(&mut self, c: char) {
        if let Some(input) = self.inputs.get_mut(self.selected) {
            input.push(c);
            self.error = None;
        }
    }

    /// Deletes the last character of the selected input.
    pub(crate) fn backspace(&mut self) {
        if let Some(input) = self.inputs.get_mut(self.selected) {
            input.pop();
            self.error = None;
        }
    }

    /// The wire object the inputs make, or why they do not make one (also kept in `error`, and
    /// the input at fault is selected).
    pub(crate) fn submit(&mut self, iface: &Interface) -> Result<Value, String> {
        let types = Types { iface };
        let mut given = Map::new();
        for (index, (field, input)) in self.fields.iter().zip(&self.inputs).enumerate() {
            let text = input.trim();
            if text.is_empty() {
                if matches!(field.ty, Type::Optional { .. }) {
                    continue;
                }
                self.selected = index;
                let message = format!("{} needs a value ({})", field.name, type_name(&field.ty));
                self.error = Some(message.clone());
                return Err(message);
            }
            match types.parse_text(&field.ty, text) {
                Ok(value) => {
                    given.insert(field.name.clone(), value);
                }
                Err(reason) => {
                    self.selected = index;
                    let message = format!("{}: {reason}", field.name);
                    self.error = Some(message.clone());
                    return Err(message);
                }
            }
        }
        types.check_object(&self.fields, given).inspect_err(|message| {
            self.error = Some(message.clone());
        })
    }
}

/// A value as it would be typed into an input: names for enums, plain text for strings and
/// times, JSON for everything else.
fn editable_text(types: &Types<'_>, ty: &Type, value: &Value) -> String {
    match (ty, value) {
        (Type::Optional { .. }, Value::Null) => String::new(),
        (Type::Optional { inner }, _) => editable_text(types, inner, value),
        (Type::Enum { .. }, _) => types.render(ty, value),
        (Type::String | Type::DateTime | Type::Duration | Type::Binary, Value::String(text)) => {
            text.clone()
        }
        _ => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn thermostat() -> Interface {
        let path =
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/thermostat/thermostat.yaml");
        crate::session::load_interface(std::path::Path::new(path)).expect("the thermostat loads")
    }

    fn boost_form(iface: &Interface) -> Form {
        let method = iface.methods.iter().find(|m| m.name == "boost").unwrap();
        Form::new(Purpose::Call("boost".to_owned()), &method.arguments)
    }

    fn type_text(form: &mut Form, text: &str) {
        for c in text.chars() {
            form.type_char(c);
        }
    }

    #[test]
    fn a_filled_form_makes_the_wire_object_and_leaves_optionals_null() {
        let iface = thermostat();
        let mut form = boost_form(&iface);
        type_text(&mut form, "1.5");
        form.next_field();
        type_text(&mut form, "PT10M");
        let value = form.submit(&iface).expect("valid");
        assert_eq!(value["extraCelsius"], json!(1.5));
        assert!(value["forHowLong"].is_string(), "{value}");
        assert_eq!(value["reason"], Value::Null);
        assert_eq!(form.error, None);
    }

    #[test]
    fn a_value_that_does_not_fit_its_type_is_refused_and_its_field_selected() {
        let iface = thermostat();
        let mut form = boost_form(&iface);
        type_text(&mut form, "warm");
        form.next_field();
        type_text(&mut form, "PT1M");
        let error = form.submit(&iface).expect_err("not a float");
        assert!(error.starts_with("extraCelsius: `warm` is not a float"), "{error}");
        assert_eq!(form.selected, 0);
        assert_eq!(form.error.as_deref(), Some(error.as_str()));
        // Editing clears the message.
        form.backspace();
        assert_eq!(form.error, None);
    }

    #[test]
    fn a_missing_required_value_names_the_field_and_its_type() {
        let iface = thermostat();
        let mut form = boost_form(&iface);
        type_text(&mut form, "2");
        let error = form.submit(&iface).expect_err("forHowLong is missing");
        assert_eq!(error, "forHowLong needs a value (duration)");
        assert_eq!(form.selected, 1);
    }

    #[test]
    fn a_property_form_starts_from_the_current_value() {
        let iface = thermostat();
        let property = iface.properties.iter().find(|p| p.name == "setpoint").unwrap();
        let current = json!({ "celsius": 21.5 });
        let mut form = Form::prefilled(
            Purpose::SetProperty("setpoint".to_owned()),
            &property.fields,
            &iface,
            Some(&current),
        );
        assert_eq!(form.inputs, vec!["21.5".to_owned()]);
        assert_eq!(form.label(0), "celsius: float");
        for _ in 0..3 {
            form.backspace();
        }
        type_text(&mut form, "3");
        assert_eq!(form.submit(&iface).unwrap(), json!({ "celsius": 23.0 }));
    }

    #[test]
    fn field_movement_wraps_around() {
        let iface = thermostat();
        let mut form = boost_form(&iface);
        form.previous_field();
        assert_eq!(form.selected, 2);
        assert_eq!(form.label(2), "reason: string? (optional)");
        form.next_field();
        assert_eq!(form.selected, 0);
    }
}
