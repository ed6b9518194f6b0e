module gotap.dev/weaver

go 1.23

require go.yaml.in/yaml/v3 v3.0.5
